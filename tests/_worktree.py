"Shared by the tests that work on a copy of the repository: copying the working tree."
import shutil, subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def copy_worktree(dst: Path) -> Path:
    "Copy the working tree's tracked and new unignored files (what a commit would hold) into `dst`, times kept; `dst`."
    files = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split('\0')
    for f in filter(None, files):
        if not (ROOT / f).is_file(): continue                 # deleted in the working tree
        (dst / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, dst / f)
    return dst
