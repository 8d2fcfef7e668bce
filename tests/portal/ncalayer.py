"""A fake NCALayer for the browser tests: a local WebSocket server speaking NCALayer's protocol, as the signing
page's script (fhir_server/portal/static/ncalayer.js) uses it, that signs with the test PKI's certificates
instead of the person's key store.

It greets a connection with ``{"result": {"version": "1.4"}}`` as NCALayer does, answers ``--heartbeat--``, and
to ``{"module": "kz.gov.pki.knca.commonUtils", "method": "createCMSSignatureFromBase64", "args": [storage,
keyType, base64, attach]}`` answers ``{"code": "200", "responseObject": <base64 CMS>}``: a CAdES signature over
the decoded data with the key of ``keyType`` ("SIGNATURE": the signing certificate, "AUTHENTICATION": the
authentication one), the data encapsulated when ``attach`` is true. ``cancel`` makes it answer as when the
person closes NCALayer's window: ``{"code": "500", "message": "action.canceled"}``; ``drop`` makes it close
every connection at once, as when NCALayer is not running. Every request is kept in ``requests`` for the test
to read."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from asn1crypto import cms
from websockets.asyncio.server import Server, ServerConnection, serve

from signing import load_signer, sign_cms

VERSION = {"result": {"version": "1.4"}}


def encapsulated(der: bytes, content: bytes) -> bytes:
    """A detached CMS with ``content`` put inside (what NCALayer gives for ``attach`` true)."""
    info = cms.ContentInfo.load(der)
    signed = info["content"]
    signed["encap_content_info"] = {"content_type": "data", "content": content}
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump(force=True))


class FakeNcaLayer:
    def __init__(self, pki: Path, signing: str = "doctor", authentication: str = "doctor-auth") -> None:
        self.keys = {"SIGNATURE": signing, "AUTHENTICATION": authentication}
        self.pki = pki
        self.requests: list[dict[str, Any]] = []
        self.cancel = False
        self.drop = False
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._server: Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-ncalayer", daemon=True)

    def start(self) -> str:
        self._thread.start()
        started: Future[Server] = asyncio.run_coroutine_threadsafe(self._serve(), self._loop)
        self._server = started.result(timeout=20)
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            asyncio.run_coroutine_threadsafe(self._server.wait_closed(), self._loop).result(timeout=20)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=20)

    async def _serve(self) -> Server:
        return await serve(self._connection, "127.0.0.1", 0)

    async def _connection(self, socket: ServerConnection) -> None:
        if self.drop:
            await socket.close()
            return
        await socket.send(json.dumps(VERSION))
        async for raw in socket:
            if raw == "--heartbeat--":
                await socket.send("--heartbeat--")
                continue
            await socket.send(json.dumps(await self.answer(json.loads(raw))))

    async def answer(self, message: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(message)
        if (message.get("module"), message.get("method")) != ("kz.gov.pki.knca.commonUtils",
                                                              "createCMSSignatureFromBase64"):
            return {"code": "500", "message": "module or method not found"}
        storage, key_type, data, attach = message.get("args") or [None] * 4
        if self.cancel:
            return {"code": "500", "message": "action.canceled"}
        if storage != "PKCS12" or key_type not in self.keys:
            return {"code": "500", "message": "args"}
        content = base64.b64decode(str(data), validate=True)
        who = self.keys[str(key_type)]
        der = await sign_cms(content, load_signer(self.pki / f"{who}.key.pem", self.pki / f"{who}.cert.pem"))
        if attach is True:
            der = encapsulated(der, content)
        return {"code": "200", "responseObject": base64.b64encode(der).decode("ascii")}
