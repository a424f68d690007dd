"""PyTriton serving the registered model (run with ``.venv-pytriton``'s Python; nvidia-pytriton).

Usage: pytriton_server.py MODEL_FOLDER NAME GRPC_PORT HTTP_PORT METRICS_PORT MAX_BATCH DELAY_US TORCH_THREADS

Triton's C++ HTTP/gRPC front end and dynamic batcher in front of ``PeerModel.run`` as the inference
function (one instance), with the same max batch size and queue delay as quakestack. Prints ``ready``
once the model is bound and served; stops on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import sys
import sysconfig
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pytriton.decorators import batch  # noqa: E402
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor  # noqa: E402
from pytriton.triton import Triton, TritonConfig  # noqa: E402

from bench.support.peer_model import PeerModel  # noqa: E402


def use_this_libpython() -> None:
    """Triton's Python backend stub links ``libpython3.X.so`` from the loader's path, which finds the system's
    (Debian's 3.11.2) before this interpreter's (pyenv's 3.11.7); that library then runs this interpreter's
    standard library and fails (``'_thread.RLock' object has no attribute '_recursion_count'``). The stub
    inherits tritonserver's environment, so this interpreter's LIBDIR goes first on LD_LIBRARY_PATH."""
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    if libdir and (Path(libdir) / sysconfig.get_config_var("LDLIBRARY")).exists():
        os.environ["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (libdir, os.environ.get("LD_LIBRARY_PATH")) if p)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt  # Triton.serve() stops the server and its proxy on it


def main() -> None:
    folder, name = sys.argv[1], sys.argv[2]
    grpc_port, http_port, metrics_port, max_batch, delay_us, threads = (int(v) for v in sys.argv[3:9])
    model = PeerModel(folder, threads)

    @batch
    def infer(waveforms: np.ndarray) -> dict[str, np.ndarray]:
        return {"magnitude": model.run(waveforms)}

    config = TritonConfig(grpc_port=grpc_port, http_port=http_port, metrics_port=metrics_port,
                          grpc_address="127.0.0.1", http_address="127.0.0.1", log_verbose=0)
    use_this_libpython()
    signal.signal(signal.SIGTERM, _interrupt)
    with Triton(config=config, workspace=Path.cwd() / "workspace") as triton:
        triton.bind(model_name=name, infer_func=infer,
                    inputs=[Tensor(name="waveforms", dtype=np.float32, shape=(model.n_channels, model.n_samples))],
                    outputs=[Tensor(name="magnitude", dtype=np.float32, shape=(1,))],
                    config=ModelConfig(max_batch_size=max_batch,
                                       batcher=DynamicBatcher(max_queue_delay_microseconds=delay_us)))
        print("ready", flush=True)
        triton.serve()


if __name__ == "__main__":
    main()
