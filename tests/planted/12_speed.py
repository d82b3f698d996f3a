"Planted wrong answers for lesson 12's exercises (tests/test_exercises.py reads WRONG)."

WRONG = {
    # 12: the obvious check - right step, but `if` on a tensor waits for the device at every step (a host sync each)
    'first_bad_step': '''
def first_bad_step(losses):
    for i, loss in enumerate(losses):
        if not torch.isfinite(loss): return i
    return -1
''',
}
