"""Which answer goes to which prompt, and which prompts a client must answer (no ssh here)."""

from __future__ import annotations

from pydantic import SecretStr

from rvssh.ssh.answers import RequestAnswers
from rvssh.ssh.prompts import classify_prompt

PASSWORD = classify_prompt("me@gpu's password: ")
PAM_PASSWORD = classify_prompt("(me@gpu) Password: ")
OTP = classify_prompt("(me@gpu) Verification code: ")
PASSPHRASE = classify_prompt("Enter passphrase for key '/k/id': ")
HOST_KEY = classify_prompt("Are you sure you want to continue connecting (yes/no/[fingerprint])? ")


def revealed(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value()


def test_the_password_goes_to_password_prompts_and_responses_to_the_rest_in_order() -> None:
    answers = RequestAnswers(SecretStr("pw"), None, [SecretStr("123456"), SecretStr("blue")])
    assert revealed(answers.answer(PASSWORD)) == "pw"
    assert revealed(answers.answer(PAM_PASSWORD)) == "pw"
    assert revealed(answers.answer(OTP)) == "123456"
    assert revealed(answers.answer(classify_prompt("(me@gpu) Favourite colour: "))) == "blue"
    assert [prompt.text for prompt in answers.questions()] == ["Verification code:", "Favourite colour:"]


def test_without_an_answer_the_handshake_stops_and_the_question_is_listed() -> None:
    answers = RequestAnswers()
    assert answers.answer(OTP) is None
    assert answers.questions() == [OTP]


def test_without_a_password_a_password_prompt_takes_the_next_response() -> None:
    answers = RequestAnswers(responses=[SecretStr("pw")])
    assert revealed(answers.answer(PAM_PASSWORD)) == "pw"
    assert answers.answer(OTP) is None
    assert answers.questions() == [PAM_PASSWORD, OTP]


def test_a_missing_passphrase_skips_the_key_and_is_remembered() -> None:
    answers = RequestAnswers()
    assert revealed(answers.answer(PASSPHRASE)) == ""
    assert answers.skipped_passphrase == PASSPHRASE
    assert revealed(RequestAnswers(passphrase=SecretStr("pp")).answer(PASSPHRASE)) == "pp"


def test_a_host_key_question_is_always_answered_no() -> None:
    assert revealed(RequestAnswers(SecretStr("pw")).answer(HOST_KEY)) == "no"


def test_answers_print_masked() -> None:
    answers = RequestAnswers(SecretStr("hunter2"), SecretStr("pp-secret"), [SecretStr("424242")])
    assert "hunter2" not in repr(answers.__dict__) and "424242" not in repr(answers.__dict__)
