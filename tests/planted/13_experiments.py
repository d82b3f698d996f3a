"Planted wrong answers for lesson 13's exercises (tests/test_exercises.py reads WRONG)."

WRONG = {
    # 13: the bug of the exercise itself - the two dicts paired by position (insertion order), not by seed
    'paired_verdict': '''
def paired_verdict(a, b, min_points=1.0):
    diff = torch.tensor([100 * (x - y) for x, y in zip(a.values(), b.values())], dtype=torch.float64)
    d, se = float(diff.mean()), float(diff.std() / len(diff) ** 0.5)
    if d > 2 * se and d >= min_points: return 'holds'
    if -d > 2 * se and -d >= min_points: return 'does not hold'
    return 'inconclusive'
''',
}
