# Planted wrong answers of lesson 21's code exercises (tests/test_exercises.py merges them into WRONG).
WRONG = {
    # 21: unpaired: the difference of the two rows' means, with a standard error from their separate spreads
    'verdict_rule': '''
def verdict_rule(a, b, min_points=1.0):
    import math
    A, B = [100 * v for v in a.values()], [100 * v for v in b.values()]
    ma, mb = sum(A) / len(A), sum(B) / len(B)
    va = sum((x - ma) ** 2 for x in A) / (len(A) - 1)
    vb = sum((x - mb) ** 2 for x in B) / (len(B) - 1)
    d, se = ma - mb, math.sqrt(va / len(A) + vb / len(B))
    if d > 2 * se and d >= min_points: return 'holds', d, se
    if -d > 2 * se and -d >= min_points: return 'does not hold', d, se
    return 'inconclusive', d, se
''',
}
