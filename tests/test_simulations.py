"""One table of simulations serves both `benchmark-rc simulate` and sweep datasets."""

from __future__ import annotations

import argparse

import pytest

from benchmark_rc.benchmark import dataset_path
from benchmark_rc.commands import simulate as simulate_command
from benchmark_rc.data.hdf5 import read_attrs, validate
from benchmark_rc.data.simulations import SIMULATIONS, simulate
from benchmark_rc.errors import UserError

TINY = {
    "paper": {"length": 200, "num_seqs_per_motif": 10},
    "koo-task1": {"num_seqs": 30},
    "koo-task3": {"num_seqs": 30},
    "profile": {"num_seqs": 30, "seq_len": 206, "out_len": 100, "jitter_margin": 10,
                "sigma_pos": 50.0},
    "long-range": {"num_seqs": 20, "seq_len": 512, "out_bins": 4},
    "realistic": {"num_seqs": 20, "length": 100},
}


def test_every_simulation_is_a_cli_subcommand():
    parser = argparse.ArgumentParser()
    simulate_command.configure(parser)
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subparsers.choices) == set(SIMULATIONS) == set(TINY)


@pytest.mark.parametrize("kind", sorted(TINY))
def test_every_simulation_can_be_a_sweep_dataset(kind, tmp_path):
    dataset = {"name": f"tiny-{kind}", "arch": "sim", "simulate": {"kind": kind, **TINY[kind]}}
    path = dataset_path(dataset, tmp_path)
    rows = validate(path)
    assert sum(rows.values()) > 0
    assert read_attrs(path)["params"]["seed"] is not None


def test_unknown_kind_and_parameter_are_named(tmp_path):
    with pytest.raises(UserError, match="simulation kind must be one of"):
        simulate("koo-task2", tmp_path / "a.h5")
    with pytest.raises(UserError, match="simulation 'koo-task1'.*num_seq.*parameters: seed"):
        simulate("koo-task1", tmp_path / "b.h5", num_seq=30)
    with pytest.raises(UserError, match="dataset d: simulation 'paper'.*length"):
        dataset_path({"name": "d", "arch": "sim", "simulate": {"kind": "paper"}}, tmp_path)
