"""python -m services.inference"""

from quakestack.runtime.app import run_service
from services.inference.servicer import DEFINITION

if __name__ == "__main__":
    run_service(DEFINITION)
