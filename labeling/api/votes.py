"""Decision trees, the volunteers' vote summaries, and volunteer classifications (which anyone signed in may send)."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from labeling.api.filters import VoteSummaryFilter
from labeling.api.permissions import CanClassify
from labeling.models import DecisionTree, Galaxy, VolunteerClassification, VoteSummary
from labeling.services.votes.aggregation import classification_create
from labeling.services.votes.classify import classify_submit, policy_for


class TreeSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = DecisionTree
        fields = ["name", "title", "description", "version", "created_at"]


class TreeSerializer(serializers.ModelSerializer):
    definition = serializers.SerializerMethodField(help_text="Questions and answers, each answer with the question "
                                                             "it leads to (the JSON layout of labeling/trees/).")

    class Meta:
        model = DecisionTree
        fields = ["name", "title", "description", "version", "created_at", "definition"]

    def get_definition(self, tree: DecisionTree) -> dict:
        return tree.as_definition()


class VoteSummarySerializer(serializers.ModelSerializer):
    external_id = serializers.CharField(source="galaxy.external_id")
    tree = serializers.CharField(source="question.tree.name")
    question = serializers.CharField(source="question.key")

    class Meta:
        model = VoteSummary
        fields = ["id", "galaxy", "external_id", "tree", "question", "source", "counts", "total", "fractions",
                  "reach", "extra", "imported_from", "updated_at"]


class ClassificationSerializer(serializers.ModelSerializer):
    galaxy = serializers.PrimaryKeyRelatedField(queryset=Galaxy.objects.all())
    tree = serializers.SlugRelatedField(slug_field="name", queryset=DecisionTree.objects.all())
    answers = serializers.DictField(help_text='{"question key": "answer key"}, or a list of answer keys for a '
                                              'checkbox question, following the tree from its first question.')
    volunteer_id = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")

    class Meta:
        model = VolunteerClassification
        fields = ["id", "galaxy", "tree", "answers", "volunteer_id", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate_answers(self, answers: dict) -> dict:
        """Shapes only (the walk itself is checked against the tree by the service): keys to a key or a list."""
        if not answers:
            raise serializers.ValidationError("answer at least the tree's first question")
        for question, given in answers.items():
            keys = given if isinstance(given, list) else [given]
            if not keys or not all(isinstance(key, str) and 0 < len(key) <= 100 for key in keys):
                raise serializers.ValidationError(f"question {question!r}: give an answer key, or a non-empty list of "
                                                  "answer keys for a checkbox question")
        return answers


class TreeViewSet(viewsets.ReadOnlyModelViewSet):
    """Galaxy Zoo style decision trees, by name; one tree comes with its questions and answers."""

    queryset = DecisionTree.objects.order_by("name")
    lookup_field = "name"

    def get_serializer_class(self):
        return TreeSerializer if self.action == "retrieve" else TreeSummarySerializer


class VoteSummaryViewSet(viewsets.ReadOnlyModelViewSet):
    """Per galaxy and question: the volunteers' counts and fractions per answer, imported or aggregated here."""

    serializer_class = VoteSummarySerializer
    queryset = VoteSummary.objects.select_related("galaxy", "question__tree").order_by("galaxy_id", "question__order",
                                                                                        "id")
    filterset_class = VoteSummaryFilter


class ClassificationViewSet(mixins.CreateModelMixin, viewsets.GenericViewSet):
    """A volunteer's answers for one galaxy; the galaxy's vote summaries are recounted at once. The same volunteer
    (volunteer_id, else the signed-in user) sending the same galaxy again stores nothing: 200 with the first."""

    serializer_class = ClassificationSerializer
    permission_classes = [CanClassify]
    queryset = VolunteerClassification.objects.none()

    @extend_schema(responses={201: ClassificationSerializer, 200: ClassificationSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        galaxy, tree = data["galaxy"], data["tree"]
        # Without an id of its own, a classification is the signed-in user's: sending it twice stores it once.
        volunteer_id = data["volunteer_id"] or f"user:{request.user.pk}"
        policy = policy_for(dataset=galaxy.dataset)
        if policy is not None and policy.tree_id == tree.pk:  # counted towards the galaxy's retirement
            classification = classify_submit(policy=policy, galaxy=galaxy, answers=data["answers"],
                                             volunteer_id=volunteer_id, user=request.user)
        else:
            classification = classification_create(galaxy=galaxy, tree=tree, answers=data["answers"],
                                                   user=request.user, volunteer_id=volunteer_id)
        code = status.HTTP_201_CREATED if classification.created else status.HTTP_200_OK
        return Response(self.get_serializer(classification).data, status=code)
