"""``dagcl_scverse.model`` imports without scanpy or anndata (the GPU machine has neither; it needs torch, PyG, numpy, scipy)."""

import subprocess
import sys
import textwrap


def test_model_imports_without_scanpy_or_anndata():
    code = textwrap.dedent(
        """
        import sys

        class Blocked:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("scanpy", "anndata"):
                    raise ImportError(f"{name} is blocked in this test")
                return None

        sys.meta_path.insert(0, Blocked())
        import dagcl_scverse.model as model
        import dagcl_scverse.model.trainer

        assert callable(model.train)
        assert not any(name.split(".")[0] in ("scanpy", "anndata") for name in sys.modules)
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_top_level_submodules_still_resolve():
    import dagcl_scverse as dagcl

    assert callable(dagcl.tl.cluster) and callable(dagcl.pl.curriculum)
    assert {"tl", "pl", "io", "datasets"} <= set(dir(dagcl))
