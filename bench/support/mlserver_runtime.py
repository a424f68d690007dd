"""MLServer's custom runtime for the serving-peers benchmark (runs in ``.venv-mlserver``, MLServer 1.7.1).

The model-settings' ``parameters.uri`` is a model folder (``card.json`` + ``weights.pt``) and
``parameters.extra.torch_threads`` the torch intra-op threads; adaptive batching (``max_batch_size``,
``max_batch_time``) and ``parallel_workers`` are MLServer's own, set in its settings files. With
adaptive batching MLServer concatenates the single-window requests along the first dimension and
splits the [N, 1] output back per request.
"""

from __future__ import annotations

from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse

from bench.support.peer_model import PeerModel


class QuakeModel(MLModel):
    """The registered magnitude model: ``waveforms`` [N, C, L] FP32 in, ``magnitude`` [N, 1] FP32 out."""

    async def load(self) -> bool:
        parameters = self.settings.parameters
        extra = (parameters.extra if parameters else None) or {}
        self.model = PeerModel(parameters.uri, int(extra.get("torch_threads", 1)))
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0])
        out = self.model.run(x)
        return InferenceResponse(model_name=self.name, id=payload.id,
                                 outputs=[NumpyCodec.encode_output("magnitude", out)])
