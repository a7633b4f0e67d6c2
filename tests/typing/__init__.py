"""Sample programs for the type checkers (see tests/test_typing.py).

Each file is checked by ``mypy --strict`` and by pyright (strict), and run:
``assert_type`` states what a checker must infer, and each line a checker
must refuse carries an ignore comment naming the error (an ignore that is
no longer needed is itself an error, so a mistake that stops being caught
fails the check).
"""
