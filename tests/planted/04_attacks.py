"Planted wrong answers for lesson 04's exercises (tests/test_exercises.py: each must make its check cell fail)."
WRONG = {
    # 04: no projection: the step is clipped to [0, 1] but not back into the eps-ball, so the perturbation grows
    'pgd_linf_step': '''
def pgd_linf_step(model, x, x_adv, y, eps, alpha):
    with attack_mode(model):
        xa = x_adv.detach().clone().requires_grad_(True)
        g, = torch.autograd.grad(F.cross_entropy(model(xa), y), xa)
        return (xa + alpha * g.sign()).clamp(0, 1).detach()
''',
}
