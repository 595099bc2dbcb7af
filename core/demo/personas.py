"""The demo story's people as the sign-in screen offers them: the story's lead first, each with
one line on what signing in as them shows. No imports: the sign-in screen reads it without
loading the seeder (``tests/core/demo/test_personas.py`` keeps it in step with the seed)."""

from __future__ import annotations

SUPPORT_EMAIL = "support@meterline.example"
SUPPORT_ADMIN_EMAIL = "support-lead@meterline.example"

DEMO_PERSONAS: dict[str, str] = {
    "maya@startup.example": "Brightpath AI's owner: a startup burning credits fast, topped up every week",
    "leo@startup.example": "Brightpath AI's admin: the same account as Maya, from a second member",
    "olivia@enterprise.example": "Northwind Logistics' owner: promotional credits that expire in a few days",
    "victor@enterprise.example": "Northwind Logistics, read-only: what a viewer may and may not see",
    "sam@consulting.example": "A consultant in two accounts: switches between Brightpath AI and Northwind",
    "dana@quietharbor.example": "Quiet Harbor's owner: a dormant account, no usage for 60 days",
    "ravi@pixelforge.example": "Pixel Forge's owner: image generation past its credits, a negative balance",
    SUPPORT_EMAIL: "Meterline support agent: finds any account, grants credits with a reason, audit log",
    SUPPORT_ADMIN_EMAIL: "Meterline support admin: refunds, caps, suspensions; approves the pending grant",
}
