"""The publishing workflow runs the README's two commands and deploys _build/html to Pages."""

import re

import yaml
from _book import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"


def _readme_commands():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Two commands.*?```bash\n(.*?)```", text, re.S)
    assert block, "README.md: no bash block under 'Two commands'"
    return {line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()}


def _workflow():
    flow = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 reads the key "on" as True
    return flow, flow.get("on", flow.get(True))


def test_workflow_runs_the_readme_commands():
    readme = _readme_commands()
    assert readme == {"./dev book", "./dev test"}
    flow, _ = _workflow()
    runs = [
        line.strip()
        for job in flow["jobs"].values()
        for step in job["steps"]
        for line in step.get("run", "").splitlines()
        if line.strip()
    ]
    assert set(runs) == readme, runs
    assert runs.index("./dev test") < runs.index("./dev book")  # publish only a tested book


def test_workflow_deploys_the_built_book_with_the_pages_actions():
    flow, trigger = _workflow()
    assert trigger["push"]["branches"] == ["main"]
    assert flow["permissions"]["pages"] == "write"
    assert flow["permissions"]["id-token"] == "write"
    uses = {
        step["uses"].split("@")[0]: step
        for job in flow["jobs"].values()
        for step in job["steps"]
        if "uses" in step
    }
    for action in ("actions/configure-pages", "actions/upload-pages-artifact"):
        assert action in uses, action
    assert uses["actions/upload-pages-artifact"]["with"]["path"] == "_build/html"
    deploy = flow["jobs"]["deploy"]
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    assert any(s.get("uses", "").startswith("actions/deploy-pages@") for s in deploy["steps"])
