"""notebooks/quickstart.ipynb runs top to bottom offline in a real Jupyter kernel and shows what it promises."""

from __future__ import annotations

import re

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")


def cell_outputs(notebook) -> list[dict]:
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])]


@pytest.mark.slow
def test_quickstart_notebook_runs_and_shows_plots_images_and_videos(repo_root):
    demo = repo_root / "keyframes" / "demo.yaml"
    assert demo.is_file(), f"the notebook loads {demo}, which is missing"
    notebook = nbformat.read(repo_root / "notebooks" / "quickstart.ipynb", as_version=4)
    # A real kernel from this environment (ipykernel installs the python3 spec into the venv); any cell error raises
    # CellExecutionError with the cell's traceback.
    client = nbclient.NotebookClient(
        notebook, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(repo_root / "notebooks")}}
    )
    client.execute()

    outputs = cell_outputs(notebook)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    pngs = [o["data"]["image/png"] for o in outputs if "image/png" in o.get("data", {})]
    htmls = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    # Schedules plot, depth figure and flow figure, each a real PNG of some size.
    assert len(pngs) >= 3 and all(len(png) > 10_000 for png in pngs)
    # The preview and the rendered clip, embedded as HTML5 videos with their mp4 data.
    videos = [html for html in htmls if "<video" in html]
    assert len(videos) >= 2
    assert all(re.search(r'src="data:video/mp4;base64,[A-Za-z0-9+/=]{1000,}"', html) for html in videos)
    # The summary line printed by the first code cell names the demo file.
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "demo.yaml:" in text
