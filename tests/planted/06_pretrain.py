# Planted wrong answers for lesson 06's exercises (tests/test_exercises.py reads WRONG from here).
WRONG = {
    # 06: ACC's adversarial term reads M_adv - the variant's third letter (the bank) read as the key's letter
    'acc_loss': '''
def acc_loss(model, x1, x1_adv, x2, T=0.2, lam=0.5):
    k = model.key(x2, 'clean')
    l_ccc = info_nce(model.query(x1, 'clean'), k, model.banks['clean'].keys, T)
    l_acc = info_nce(model.query(x1_adv, 'adv'), k, model.banks['adv'].keys, T)
    return lam * l_ccc + (1 - lam) * l_acc
''',
}
