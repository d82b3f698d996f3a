# Planted wrong answers of lesson 14's code exercises (tests/test_exercises.py merges them into WRONG).
WRONG = {
    # 14: the colleague's bug: the output indexed with the permutation again instead of its inverse
    'shuffled_keys': '''
def shuffled_keys(k, x, perm, groups):
    out = Grouped(k, groups)(x[perm])
    return F.normalize(out[perm], dim=1)
''',
}
