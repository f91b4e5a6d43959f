"""The benchmarks' steel cantilever under gravity (benchmarks/elasticity_3d.toml) as a case for
tests: a 4 x 1 x 1 m block clamped at x = 0, on [4n, n, n] cells refined ``refine`` times.
Used by tests/test_elasticity_gamg.py and tests/test_multigrid.py."""

WEIGHT = 7850 * 9.81 * 4.0  # N: rho g V


def cantilever(n: int, refine: int = 0, preset: str = "cg_gamg", rtol: float = 1e-10) -> dict:
    mesh = {"type": "box", "length": [4, 1, 1], "cells": [4 * n, n, n]}
    if refine:
        mesh["refine"] = refine
    return {
        "mesh": mesh,
        "physics": {
            "mechanics": {
                "youngs_modulus": "210 GPa",
                "poisson_ratio": 0.3,
                "body_force": [0, 0, "-7850*9.81"],
                "boundaries": {"left": {"type": "fixed"}},
            }
        },
        "solver": {"preset": preset, "rtol": rtol},
        "output": {"xdmf": False},
    }
