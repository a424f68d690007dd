"""python -m services.data"""

from quakestack.runtime.app import run_service
from services.data.servicer import DEFINITION

if __name__ == "__main__":
    run_service(DEFINITION)
