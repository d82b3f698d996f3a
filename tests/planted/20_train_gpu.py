# Planted wrong answers of lesson 20's code exercises (tests/test_exercises.py merges them into WRONG).
WRONG = {
    # 20: the bug of the exercise: torch.save straight to the checkpoint empties it before the new one is complete
    'save_atomically': '''
def save_atomically(obj, path):
    torch.save(obj, path)
    return Path(path)
''',
}
