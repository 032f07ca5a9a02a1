import pytest

from bptrain.nn.schedules import SCHEDULES


@pytest.mark.parametrize("step", [0, 1, 10_000])
def test_constant_returns_lr_as_a_python_float_at_every_step(step):
    lr = SCHEDULES.get("constant")(step, lr=0.05)
    assert lr == 0.05 and type(lr) is float
