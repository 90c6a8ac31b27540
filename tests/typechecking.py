"""The type checker the test suite runs over ``bts/`` (installed by ``tests/conftest.py``): beartype, with the
numeric tower of PEP 484 (an ``int`` is accepted where ``float`` is annotated, as Python's typing intends)."""

from beartype import BeartypeConf, beartype

typechecker = beartype(conf=BeartypeConf(is_pep484_tower=True))
