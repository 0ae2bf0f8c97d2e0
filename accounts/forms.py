from django import forms

from .models import Role, Team


class TeamNameForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ["name"]


class MemberAddForm(forms.Form):
    email = forms.EmailField(label="Email of an existing Canvas user")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
