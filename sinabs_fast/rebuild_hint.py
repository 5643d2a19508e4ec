"""What to tell a user whose compiled extension is missing or older than the Python code."""

REBUILD = ("Build it (again) from the repository root with "
           "`pip install --no-build-isolation -e .` or "
           "`python setup.py build_ext --inplace`; see README.md, 'Building'.")
