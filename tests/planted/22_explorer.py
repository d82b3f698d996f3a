# Lesson 22: planted wrong answers (tests/test_exercises.py loads WRONG from here; it wins over the central dict).
WRONG = {
    # 22: enables ACA+ for AAA too, which already writes its adversarial keys into M_adv
    'aca_plus_switch_on': '''
def aca_plus_switch_on(v):
    return v.adv_query and v.bank == 'adv'
''',
}
