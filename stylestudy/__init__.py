"""stylestudy: run and analyse subjective evaluations of neural style transfer.

The stages are sub-packages, each mapped from a folder of the repository: ``stylestudy.engine``
(study model, neural core, stimulus production), ``stylestudy.evalserver`` (the rating server),
``stylestudy.analysis`` (statistics and reports); ``stylestudy.studies`` holds the bundled
study files.  This top package holds what spans all stages: the command line and the demo.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("stylestudy")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
