"""The README's Python example runs as written and prints what it claims."""

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_python_api_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "the README has no Python example"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(blocks[0], "README.md", "exec"), {})
    printed = out.getvalue()
    assert "(500, 3) (500, 10)" in printed
    ae, pca = (float(x) for x in re.findall(r"MSE (\d+\.\d+)", printed))
    assert ae < pca  # the curved columns are what the autoencoder is for
