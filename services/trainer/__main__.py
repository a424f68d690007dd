"""python -m services.trainer"""

from quakestack.runtime.app import run_service
from services.trainer.servicer import DEFINITION

if __name__ == "__main__":
    run_service(DEFINITION)
