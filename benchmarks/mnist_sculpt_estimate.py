"""Cost of the full MNIST task-1 sculpting protocol on [1568, 392, 392, 20], from the spec's step rule.

Counts the trainings each search makes (trainers.sculpt.count_rounds replays spec §4.3)
when every target up to the final pruning level passes and every larger one fails, with the
final levels taken from spec §7.2 (12–30 units per hidden layer survive; density 0.02–0.30 %).
Every training is 40 epochs on the 70k training rows; a masked net costs as much as a dense one.

Usage: .venv/bin/python benchmarks/mnist_sculpt_estimate.py EPOCH_SECONDS
"""
import sys

from trainers.sculpt import PE_GRID, PU_GRID, count_rounds

WIDTHS, EPOCHS, SEEDS = (1568, 392, 392, 20), 40, 4
H = sum(WIDTHS[1:-1])
W = sum(a * b for a, b in zip(WIDTHS[:-1], WIDTHS[1:]))


def trainings(units_left: int, density: float, pus, pes) -> int:
    unit_limit = 100.0 * (1 - 2 * units_left / H)
    alive = WIDTHS[0] * units_left + units_left ** 2 + units_left * WIDTHS[-1]
    start = 100.0 * (1 - alive / W)
    edge_limit = 100.0 - density
    unit = sum(count_rounds(pu, start=0.0, p_min=100.0 / H, limit=unit_limit) for pu in pus)
    edge = len(pus) * sum(count_rounds(pe, start=start, p_min=100.0 / W, limit=edge_limit) for pe in pes)
    return 1 + unit + len(pus) + edge          # dense + unit rounds + one retraining per Pu + edge rounds


def main(epoch_s: float) -> None:
    print(f"H={H} hidden units, W={W} weights, {EPOCHS} epochs per training, {SEEDS} seeds, epoch {epoch_s:.1f} s")
    print(f"{'grid':>12s} {'units/layer':>11s} {'density %':>9s} {'trainings':>9s} {'epochs/seed':>11s} "
          f"{'CPU h, 4 seeds':>14s}")
    for name, pus, pes in (("one (10,0.5)", (10.0,), (0.5,)), ("full 14x5", PU_GRID, PE_GRID)):
        for units_left, density in ((12, 0.02), (20, 0.1), (30, 0.3)):
            n = trainings(units_left, density, pus, pes)
            hours = n * EPOCHS * epoch_s * SEEDS / 3600
            print(f"{name:>12s} {units_left:11d} {density:9.2f} {n:9d} {n * EPOCHS:11d} {hours:14.1f}")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 10.0)
