"""service/api/problems.py: every error class Frontline raises meets HTTP there, as its own
answer (the conflict model's, the application's and the transport's errors alike)."""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest

from service import errors as application_errors
from service.api import errors as transport_errors
from service.api.problems import PROBLEMS
from service.domain import errors as domain_errors
from service.domain.errors import FrontlineError

MODULES = (domain_errors, application_errors, transport_errors)


def _error_classes(module: ModuleType) -> list[type[FrontlineError]]:
    return [
        value
        for _, value in inspect.getmembers(module, inspect.isclass)
        if issubclass(value, FrontlineError) and value.__module__ == module.__name__
    ]


ALL = [cls for module in MODULES for cls in _error_classes(module)]


def test_the_three_error_modules_define_errors() -> None:
    """Each error module holds error classes (a guard against the list below being empty)."""
    assert all(_error_classes(module) for module in MODULES)


@pytest.mark.parametrize("cls", ALL, ids=lambda cls: cls.__name__)
def test_each_error_class_is_answered_by_its_most_specific_entry(
    cls: type[FrontlineError],
) -> None:
    """Every error class is answered by the entry of the nearest class in its ancestry that
    PROBLEMS lists (itself, or a base such as InvalidEvent for BatchTooLarge), never by the
    catch-all 400 unless it is FrontlineError: the map is read in order, so a base listed
    before a subclass would take its instances over."""
    nearest = next(known for known in cls.__mro__ if known in PROBLEMS)
    first = next(known for known in PROBLEMS if issubclass(cls, known))
    assert first is nearest
    assert nearest is not FrontlineError or cls is FrontlineError
