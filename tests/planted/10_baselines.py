"""Planted wrong answers for lesson 10's exercises (they override tests/test_exercises.py's dict)."""
WRONG = {
    # 10: the self-similarity "masked" with 0 instead of -inf: each anchor still counts exp(0) = 1 for itself
    'nt_xent_fixed': '''
def nt_xent_fixed(z1, z2, t=0.5):
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = len(z1)
    sim = (z @ z.t() / t).masked_fill(torch.eye(2 * n, dtype=torch.bool), 0.0)
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(sim, target)
''',
}
