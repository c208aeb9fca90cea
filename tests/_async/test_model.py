"""Models and Objects: versioned with their content, predict traced with self as the ref."""

from __future__ import annotations

import pydantic
import pytest

import weave_client
from weave_client import Model, Object, async_op
from weave_client._async._client import AsyncWeaveClient

from ._helpers import stored_value


class Prompted(Model):
    template: str
    temperature: float = 0.0

    @async_op
    async def predict(self, question: str) -> str:
        return self.template.format(question=question)


class Undecorated(Model):
    factor: int

    def predict(self, x: int) -> int:  # traced for the user (weave would refuse it)
        return x * self.factor


class Settings(Object):
    retries: int
    tags: list[str] = pydantic.Field(default_factory=list)


@pytest.fixture
def client(local_client: AsyncWeaveClient) -> AsyncWeaveClient:
    """These tests run on our local server only."""
    return local_client


async def test_model_versions_follow_its_fields(server_url: str, entity: str, project: str) -> None:
    async with AsyncWeaveClient(entity, project, server_url=server_url) as client:
        model = Prompted(template="Q: {question}")
        v1 = await client.save(model, "prompted")
        same = await client.save(Prompted(template="Q: {question}"), "prompted")
        model.temperature = 0.7
        v2 = await client.save(model, "prompted")
        stored = await stored_value(client, v2)
        versions = await client.objects()

    assert same.digest == v1.digest
    assert v2.digest != v1.digest
    assert stored["_class_name"] == stored["_type"] == "Prompted"
    assert stored["_bases"] == ["Model", "Object", "BaseModel"]
    assert stored["template"] == "Q: {question}" and stored["temperature"] == 0.7
    # Its predict op is stored with it as an op ref, as weave stores it.
    assert stored["predict"].startswith(f"weave:///{entity}/{project}/op/Prompted.predict:")
    assert len([v for v in versions if v.name == "prompted"]) == 2


def _versioned_class(body: int) -> type[Model]:
    # Two classes of the same name whose predict differs only in its code.
    if body == 1:

        class Versioned(Model):
            @async_op
            async def predict(self, x: int) -> int:
                return x + 1

    else:

        class Versioned(Model):  # type: ignore[no-redef]
            @async_op
            async def predict(self, x: int) -> int:
                return x + 2

    return Versioned


async def test_a_change_to_predicts_code_makes_a_new_version(client: AsyncWeaveClient) -> None:
    first = await client.save(_versioned_class(1)(), "versioned")
    again = await client.save(_versioned_class(1)(), "versioned")
    second = await client.save(_versioned_class(2)(), "versioned")
    assert again.digest == first.digest
    assert second.digest != first.digest
    old, new = await stored_value(client, first), await stored_value(client, second)
    assert old["predict"] != new["predict"]
    assert {k: v for k, v in old.items() if k != "predict"} == {
        k: v for k, v in new.items() if k != "predict"
    }


async def test_predict_is_traced_with_self_as_the_models_ref(client: AsyncWeaveClient) -> None:
    model = Prompted(template="<{question}>")
    ref = await client.save(model, "prompted")
    assert await model.predict("hi") == "<hi>"
    [call] = await client.calls()
    assert call.op_short_name == "Prompted.predict"
    assert call.inputs == {"self": ref, "question": "hi"}
    assert call.output == "<hi>"

    # Changed since it was saved: recorded as its value, never as the old version.
    model.template = "[{question}]"
    await model.predict("x")
    latest = [c for c in await client.calls() if c.id != call.id]
    assert latest[0].inputs["self"].template == "[{question}]"


async def test_an_undecorated_predict_is_traced(client: AsyncWeaveClient) -> None:
    model = Undecorated(factor=3)
    assert weave_client._flow.is_op(Undecorated.predict)
    assert model.get_infer_method() is not None
    assert model.predict(4) == 12
    [call] = await client.calls()
    assert call.op_short_name == "Undecorated.predict"
    assert call.output == 12


async def test_objects_save_and_get_like_weave(client: AsyncWeaveClient) -> None:
    settings = Settings(name="cfg", retries=3, tags=["a"])
    ref = await client.save(settings, "settings")
    stored = await stored_value(client, ref)
    assert stored == {
        "_type": "Settings",
        "_class_name": "Settings",
        "_bases": ["Object", "BaseModel"],
        "name": "cfg",
        "description": None,
        "retries": 3,
        "tags": ["a"],
    }
    got = await client.get(ref)
    assert got.retries == 3 and got.tags == ["a"] and got._class_name == "Settings"
    with pytest.raises(pydantic.ValidationError):
        Settings(retries=1, unknown=True)  # type: ignore[call-arg]


def test_a_model_without_predict_is_refused() -> None:
    class Empty(Model):
        pass

    with pytest.raises(TypeError, match="no inference method"):
        Empty().get_infer_method()
    assert weave_client.Model is Model and weave_client.Object is Object
