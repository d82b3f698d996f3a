"Planted wrong answers for lesson 02's exercises (tests/test_exercises.py: each must make its check cell fail)."
WRONG = {
    # 02: the SimCLR habit - target i for row i - where the positive is column 0 of (1 + K) logits
    'info_nce_from_logits': '''
def info_nce_from_logits(l_pos, l_neg, T=0.2):
    logits = torch.cat([l_pos[:, None], l_neg], dim=1) / T
    return F.cross_entropy(logits, torch.arange(len(logits)))
''',
    # 02: m and 1 - m swapped: the key encoder jumps to the query encoder instead of following it slowly
    'momentum_step': '''
def momentum_step(model_q, model_k, m=0.999):
    with torch.no_grad():
        for p_q, p_k in zip(model_q.parameters(), model_k.parameters()):
            p_k.mul_(1 - m).add_(p_q, alpha=m)
''',
}
