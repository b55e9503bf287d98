"""wsss_steps: the stages of a weakly supervised semantic segmentation workflow.

One module per stage (run any of them with ``python -m wsss_steps.<stage> --help``)
plus the library code they share.
"""

__version__ = "0.1.0"
