"Planted wrong answers for lesson 03's exercises (tests/test_exercises.py: each must make its check cell fail)."
WRONG = {
    # 03: the slice up to the end of the ring is written, the part that wraps around to row 0 is dropped
    'ring_enqueue': '''
def ring_enqueue(bank, k):
    B, K, p = len(k), bank.size, int(bank.ptr)
    n = min(B, K - p)
    bank.keys[p:p + n] = k[:n]
    bank.written_at[p:p + n] = bank.step
    bank.ptr.fill_((p + B) % K)
    bank.step += 1
''',
}
