from __future__ import annotations

from django import forms

from features.models import FeatureList, Visibility


class FeatureListForm(forms.ModelForm):
    class Meta:
        model = FeatureList
        fields = ["name", "description", "visibility", "default_test_text"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3}),
                   "default_test_text": forms.Textarea(attrs={"rows": 2})}
        help_texts = {"visibility": "Unlisted lists are visible to anyone with the link; private ones "
                                    "only to you."}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["visibility"].initial = Visibility.UNLISTED


class AddFeatureForm(forms.Form):
    model = forms.CharField(max_length=128, widget=forms.TextInput(attrs={"placeholder": "model"}))
    source = forms.CharField(max_length=160, widget=forms.TextInput(attrs={"placeholder": "source"}))
    index = forms.IntegerField(min_value=0, widget=forms.NumberInput(attrs={"placeholder": "index"}))
    note = forms.CharField(required=False, widget=forms.TextInput(attrs={"placeholder": "note (optional)"}))


class NoteForm(forms.Form):
    note = forms.CharField(required=False, max_length=2000)
