"""Root pytest hooks shared by tests/ and the dataset builder tests in datasets/."""


def pytest_collection_modifyitems(config, items):
    # tf.test.TestCase (the base of TFDS's test cases) has a deprecated `test_session` helper that
    # pytest collects and then reports as a skip ("Not a test."). It is not a test: deselect it, so a
    # CI run shows no skips. (It cannot be removed from the class: TFDS calls it in graph mode.)
    import tensorflow as tf

    inherited = tf.test.TestCase.test_session
    chosen, dropped = [], []
    for item in items:
        function = getattr(getattr(item, "obj", None), "__func__", None)
        (dropped if item.name == "test_session" and function is inherited else chosen).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = chosen
