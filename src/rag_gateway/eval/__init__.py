"""Retrieval quality the project measures itself: ``rag-gateway eval`` / ``make eval``.

:mod:`~rag_gateway.eval.questions` builds a labelled question set from the corpus (reproducibly),
:mod:`~rag_gateway.eval.runner` runs it through the gateway's real retrieval per mode,
:mod:`~rag_gateway.eval.metrics` scores it and :mod:`~rag_gateway.eval.report` writes the results, the
markdown tables and the baseline guard.
"""

from rag_gateway.eval.questions import KINDS, Question, QuestionSetError, build_questions
from rag_gateway.eval.runner import KNOWN_MODES, EvalRun, Mode, run_evaluation

__all__ = [
    "KINDS",
    "KNOWN_MODES",
    "EvalRun",
    "Mode",
    "Question",
    "QuestionSetError",
    "build_questions",
    "run_evaluation",
]
