from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import SetPasswordMixin

from .models import Invitation, Role, Team, User


class TeamNameForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ["name"]


class InvitationForm(forms.Form):
    email = forms.EmailField(label="Email address", widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class InvitationSignUpForm(SetPasswordMixin, forms.Form):
    """A new user's name and password, on the page of the invitation that creates their account."""

    full_name = forms.CharField(
        label="Your name", max_length=150, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    password1, password2 = SetPasswordMixin.create_password_fields()

    def __init__(self, *args, invitation: Invitation, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.invitation = invitation
        # Plain text: the shared field template escapes help texts, and Django's own is an HTML list.
        self.fields["password1"].help_text = " ".join(password_validation.password_validators_help_texts())

    def clean(self):
        self.validate_passwords()
        # The validators compare the password with the name and email, so they see the user-to-be.
        self.validate_password_for_user(
            User(email=self.invitation.email, full_name=self.cleaned_data.get("full_name", ""))
        )
        return super().clean()
