"""Reads of decision trees, shaped for the tree pages."""

from dataclasses import dataclass

from django.db.models import Count, IntegerField, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce

from labeling.models import Answer, DecisionTree, Question


def tree_list() -> QuerySet[DecisionTree]:
    """Every decision tree with its numbers of questions and answers (n_questions, n_answers)."""
    answers = (Answer.objects.filter(question__tree=OuterRef("pk")).order_by().values("question__tree")
               .annotate(n=Count("pk")).values("n"))
    return DecisionTree.objects.annotate(
        n_questions=Count("questions", distinct=True),
        n_answers=Coalesce(Subquery(answers, output_field=IntegerField()), 0),
    ).order_by("name")


@dataclass
class TreeQuestion:
    question: Question
    answers: list[Answer]
    # The earlier questions that lead here, each with the answers that do; an empty list means any answer does.
    asked_after: list[tuple[Question, list[Answer]]]


def tree_detail(*, name: str) -> tuple[DecisionTree, list[TreeQuestion]]:
    """A decision tree's questions in order, each with its answers (help, examples, next question) and the earlier
    questions and answers that lead to it. Three queries, whatever the size of the tree.

    Raises:
        DecisionTree.DoesNotExist: for an unknown name.
    """
    tree = DecisionTree.objects.get(name=name)
    questions = list(tree.questions.select_related("next_question").prefetch_related(
        Prefetch("answers", queryset=Answer.objects.select_related("next_question").order_by("order"))))
    asked_after: dict[int, list] = {question.pk: [] for question in questions}
    for question in questions:
        answers = list(question.answers.all())
        if question.kind == Question.Kind.MULTIPLE:
            if question.next_question_id:
                asked_after[question.next_question_id].append((question, []))
            continue
        for target in dict.fromkeys(a.next_question_id for a in answers if a.next_question_id):
            leading = [a for a in answers if a.next_question_id == target]
            asked_after[target].append((question, [] if len(leading) == len(answers) else leading))
    return tree, [TreeQuestion(question=q, answers=list(q.answers.all()), asked_after=asked_after[q.pk])
                  for q in questions]
