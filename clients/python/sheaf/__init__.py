"""
sheaf - the Python client of the sheaf batch job service (standard library
only; pandas for Job.to_pandas, tqdm for a nicer bar, both optional).

    from sheaf import Sheaf
    sh = Sheaf()                     # $SHEAF_URL, $SHEAF_TOKEN
    job = sh.submit(spec, wait=True) # a progress bar while it runs
    df = job.to_pandas()
"""

from ._http import (IntegrityError, JobFailedError, SheafConnectionError,
                    SheafError)
from .client import Job, Sheaf
from .sse import Event, iter_events

__version__ = "0.1.0"
__all__ = ["Sheaf", "Job", "SheafError", "SheafConnectionError",
           "JobFailedError", "IntegrityError", "Event", "iter_events"]
