"""Never returns from the factory."""


def build_model():
    n = 0
    while True:
        n += 1
