"""Size-aware defaults: full-batch epochs and carry up to FULL_BATCH_MAX_CELLS cells, then falling as 1 / cells."""

import pytest

from dagcl_scverse.model.size_defaults import (
    FULL_BATCH_MAX_CELLS,
    MIN_EPOCHS,
    default_carry_steps,
    default_epochs,
    resolve_batch_size,
    size_defaults,
)
from dagcl_scverse.tl._settings import resolve_config


@pytest.mark.parametrize(
    ("n_cells", "epochs", "carry"),
    [(822, 100, 50), (FULL_BATCH_MAX_CELLS, 100, 50), (2 * FULL_BATCH_MAX_CELLS, 50, 25), (1_000_000, 10, 5)],
)
def test_epochs_and_carry_fall_together_above_the_full_batch_size(n_cells, epochs, carry):
    assert default_epochs(n_cells) == (epochs, epochs)
    assert default_carry_steps(n_cells) == carry


def test_the_floor_holds_for_any_size():
    assert default_epochs(10**8) == (MIN_EPOCHS, MIN_EPOCHS)
    assert default_carry_steps(10**8) == MIN_EPOCHS // 2
    assert resolve_batch_size(None, 10**6) == FULL_BATCH_MAX_CELLS
    assert resolve_batch_size(None, FULL_BATCH_MAX_CELLS) is None


def test_resolve_config_scales_the_carry_and_honours_an_explicit_one():
    kwargs = {"epochs": None, "pretrain_epochs": None, "stages": 0, "use_rep": None}
    assert resolve_config(1_000_000, 12, **kwargs).carry_steps == 5
    assert resolve_config(5_000, 12, **kwargs).carry_steps == 50
    # epochs never change the carry: epochs=1 must give the start of the default run
    assert resolve_config(1_000_000, 12, **{**kwargs, "epochs": 1}).carry_steps == 5
    assert resolve_config(1_000_000, 12, carry_steps=7, **kwargs).carry_steps == 7


@pytest.mark.parametrize("n_cells", [822, 200_000, 1_000_000])
def test_resolve_config_takes_every_size_default_from_one_place(n_cells):
    kwargs = {"epochs": None, "pretrain_epochs": None, "stages": 0, "use_rep": None}
    config = resolve_config(n_cells, 12, **kwargs)
    defaults = size_defaults(n_cells)
    assert {name: getattr(config, name) for name in defaults} == defaults
    assert size_defaults(n_cells, batch_size=512)["batch_size"] == 512
