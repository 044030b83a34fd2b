"""Running the ``striate`` command inside the test process, and the shape of its error output."""
from striate.tools.cli import main


def run_cli(capsys, *argv):
    """``(exit status, stdout, stderr)`` of ``striate argv`` run in this process."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as exit:
        status = exit.code
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status, err, expected_status, pattern):
    """A failed command: the expected exit status and one line on stderr holding ``pattern``, no traceback."""
    assert status == expected_status, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert pattern in lines[0], lines[0]
