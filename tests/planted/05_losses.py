# Lesson 05: planted wrong answers (tests/test_exercises.py loads WRONG from here; it wins over the central dict).
WRONG = {
    # 05: only the loss's passes - forgets that ACA+ (and every adversarial key) must be computed to be enqueued
    'encoder_passes': '''
def encoder_passes(v, aca_plus=False):
    return {('f_q', 'clean'), ('f_k', 'clean'), ('f_q', v.query_bn), ('f_k', v.key_bn)}
''',
}
