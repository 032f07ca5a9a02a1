"""The config's component models: one strict pydantic model per registered name (layer, activation,
loss, optimizer, schedule), made from the declaration in bptrain.nn (component_model), and the
union that a name selects (tagged).

The layers' and activations' models are made here, and the others in bptrain.config.schema, so
that checking a model file's layers (bptrain.runs.modelfile, for predict) builds these alone and
not the whole config schema.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Mapping, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Discriminator,
    Field,
    PlainSerializer,
    Tag,
    create_model,
    model_validator,
)

from bptrain.config.read_schema import Strict
from bptrain.config.numbers import Float, Int, Positive
from bptrain.nn.activations import ACTIVATIONS
from bptrain.nn.initializers import INITIALIZERS
from bptrain.nn.layers import LAYERS
from bptrain.nn.names import Registry
from bptrain.nn.options import REQUIRED, SAME, Declaration, Option, Rule, did_you_mean

METRIC_PATTERN = r"^(penalty|(train|val)_[a-z0-9_]+)$"  # a logged metric: penalty, train_loss, val_<metric>


def tagged(key: str, kind: str, default: str | None, *members: type[BaseModel], number: str | None = None):
    """A union of `members` chosen by the value of `key` (their Literal tag), in any letter case.

    A bare string names a member; with `number`, a bare whole number is that option of the
    `default` member (`layers: [64, 64]`).
    """
    tags = {m.model_fields[key].annotation.__args__[0]: m for m in members}

    def tag(value: Any) -> str | None:
        if isinstance(value, BaseModel):
            return getattr(value, key)
        if isinstance(value, str):
            return value
        if isinstance(value, Mapping):
            name = value.get(key, default)
            # not str() of a list or mapping: an alias bomb of YAML anchors would be written out in full
            return None if isinstance(name, (list, Mapping)) else str(name)
        return None

    def canonical(name: Any) -> Any:
        # `Relu`, `ReLU` and `ADAM` are unambiguous: every tag is lowercase
        return name.lower() if isinstance(name, str) and name.lower() in tags else name

    def shorthand(value: Any) -> Any:
        if isinstance(value, str):
            return {key: canonical(value)}
        if number is not None and isinstance(value, int) and not isinstance(value, bool):
            return {key: default, number: value}
        if isinstance(value, Mapping) and key not in value and default is not None:
            return {key: default, **value}
        if isinstance(value, Mapping) and key in value:
            return {**value, key: canonical(value[key])}
        return value

    union = Union[tuple(Annotated[m, Tag(t)] for t, m in tags.items())]  # type: ignore[misc]
    return Annotated[
        union,
        Discriminator(
            tag,
            custom_error_type="unknown_name",
            custom_error_message=f"unknown {kind}",
            custom_error_context={"kind": kind, "choices": ", ".join(sorted(tags)), "key": key, "number": number or ""},
        ),
        BeforeValidator(shorthand),
    ]


# --- data: in data_schema.py ------------------------------------------------------------------


# --- components: one model per registered name, made from its declaration (bptrain.nn.options) ---


def _checked_by(option: Option):
    """An AfterValidator function refusing what the option's own check refuses, as the core would."""

    def check(value: Any) -> Any:
        try:
            option.check(value)  # type: ignore[misc]
        except (ValueError, TypeError):
            raise ValueError(f"must be {option.must} (got {value})") from None
        return value

    return check


def _two(value: Any) -> Any:
    """A pair's value, refused when it is no list of two (pydantic would speak of tuples and missing keys)."""
    if not isinstance(value, (list, tuple)):
        got = "a mapping" if isinstance(value, dict) else str(value).lower() if isinstance(value, bool) else repr(value)
        raise ValueError(f"must be a list of two numbers, e.g. [0.9, 0.999] (got {got})")
    if len(value) != 2:
        raise ValueError(f"must be a list of two numbers, e.g. [0.9, 0.999] (got {len(value)} item{'' if len(value) == 1 else 's'})")
    return value


def _annotation(option: Option) -> Any:
    """The pydantic type of an option: its `config` type expression, or one made from its kind and range."""
    if option.config is not None:
        annotation = eval(option.config, _NAMESPACE)  # a type expression declared in bptrain.nn, never user input
    elif option.kind == "flag":
        annotation = bool
    elif option.kind == "choice":
        annotation = Literal[option.choices]  # type: ignore[valid-type]
    else:
        number = Annotated[Int if option.kind == "integer" else Float, Field(**option.range.constraints())]
        annotation = Annotated[tuple[number, number], BeforeValidator(_two)] if option.kind == "pair" else number
    return Annotated[annotation, AfterValidator(_checked_by(option))] if option.config_check else annotation


def _field(option: Option) -> tuple[Any, Any]:
    default = option.default if option.config_default is SAME else option.config_default
    if default is REQUIRED:
        return _annotation(option), Field()
    # a declared default in the core's terms (`relu`) becomes the config's model of it
    return _annotation(option), Field(default, validate_default=option.config is not None and default is not None)


def _rule_validator(rule: Rule):
    def check(self: BaseModel) -> BaseModel:
        if rule.broken(dict(self)):
            raise ValueError(rule.text)
        return self

    return model_validator(mode="after")(check)


def component_model(declaration: Declaration, key: str = "name") -> type[BaseModel]:
    """The strict model of one registered name: its tag (`key`) and its options as the config spells them."""
    fields = {option.key: _field(option) for option in declaration.options if option.in_config}
    rules = {f"rule_{i}": _rule_validator(r) for i, r in enumerate(declaration.rules) if r.in_config}
    class_name = "".join(part.title() for part in declaration.name.split("_")) + declaration.kind.title().replace(" ", "")
    return create_model(  # type: ignore[call-overload]
        class_name, __base__=Strict, __validators__=rules, **{key: (Literal[declaration.name], ...)}, **fields
    )


def component_models(registry: Registry, key: str = "name") -> tuple[type[BaseModel], ...]:
    return tuple(component_model(member.declaration, key) for member in registry.values())


def _initializer(value: str, allow_auto: bool) -> str:
    names = sorted([*INITIALIZERS, *(["auto"] if allow_auto else [])])
    if value.lower() in names:
        return value.lower()
    raise ValueError(f"unknown initializer {value!r}; choose from {', '.join(names)}.{did_you_mean(value, names)}")


def _short_activation(activation: BaseModel) -> Any:
    """An activation without options is written back as its bare name."""
    return activation.name if not activation_options(activation) else activation.model_dump()  # type: ignore[attr-defined]


def activation_options(activation: BaseModel) -> dict[str, Any]:
    return activation.model_dump(exclude={"name"})


# --- activations: a name, or a mapping with the name and its options --------------------------

ACTIVATION_MODELS = component_models(ACTIVATIONS)
ActivationConfig = tagged("name", "activation", None, *ACTIVATION_MODELS)

# the names that the declarations' `config` type expressions may use
_NAMESPACE = {
    "Annotated": Annotated,
    "Literal": Literal,
    "Field": Field,
    "Int": Int,
    "Positive": Positive,
    "Count": Annotated[Int, Field(ge=1)],
    "METRIC_PATTERN": METRIC_PATTERN,
    "Activation": Annotated[ActivationConfig, PlainSerializer(_short_activation)],
    "InitializerOrAuto": Annotated[str, AfterValidator(lambda value: _initializer(value, allow_auto=True))],
}

# --- layers --------------------------------------------------------------------------------

LAYER_MODELS = component_models(LAYERS, key="type")
LayerConfig = tagged("type", "layer type", "dense", *LAYER_MODELS, number="units")
DenseLayer = LAYER_MODELS[list(LAYERS).index("dense")]
