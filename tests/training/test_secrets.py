"""The training secrets filter against planted secrets and harmless look-alikes.

The secrets are built at run time from a seeded generator, in the shapes the providers issue,
so that this file holds no literal token for a scanner to flag and the set is the same each run.
The bar (issue #31): every planted secret caught, at most 5% of the look-alikes dropped.
"""

from __future__ import annotations

import random
import string

from training.secrets import find_secrets

RANDOM = random.Random(31)
ALNUM = string.ascii_letters + string.digits


def rand(length: int, alphabet: str = ALNUM) -> str:
    return "".join(RANDOM.choice(alphabet) for _ in range(length))


def b64url(length: int) -> str:
    return rand(length, ALNUM + "-_")


HEX = "0123456789abcdef"
UPPER = string.ascii_uppercase + string.digits
JWT = f"eyJ{b64url(30)}.eyJ{b64url(60)}.{b64url(43)}"

# (file name, text): each holds one secret.
PLANTED = [
    ("ci.py", f'GITHUB_TOKEN = "ghp_{rand(36)}"'),
    ("deploy.py", f'token = "github_pat_{rand(22)}_{rand(59)}"'),
    ("oauth.py", f'session.headers["Authorization"] = "token gho_{rand(36)}"'),
    ("app.py", f'headers = {{"Authorization": "token ghs_{rand(36)}"}}'),
    ("gitlab.py", f'gl = gitlab.Gitlab(url, private_token="glpat-{b64url(20)}")'),
    ("trigger.sh", f"curl -X POST -F token=glptt-{rand(40, HEX)} https://gitlab.com/api"),
    ("slack.py", f'client = WebClient("xoxb-{rand(12, string.digits)}-'
                 f'{rand(13, string.digits)}-{rand(24)}")'),
    ("notify.py", f'SLACK_USER_TOKEN = "xoxp-{rand(12, string.digits)}-{rand(12, string.digits)}'
                  f'-{rand(13, string.digits)}-{rand(32, HEX)}"'),
    ("alerts.py", f'WEBHOOK = "https://hooks.slack.com/services/T{rand(8, UPPER)}/'
                  f'B{rand(10, UPPER)}/{rand(24)}"'),
    ("hub.py", f'HF_TOKEN = "hf_{rand(34)}"'),
    ("download.py", f'login(token="hf_{rand(34)}")'),
    ("claude.py", f'ANTHROPIC_API_KEY = "sk-ant-api03-{b64url(93)}AA"'),
    ("chat.py", f'client = anthropic.Anthropic(api_key="sk-ant-api03-{b64url(93)}AA")'),
    ("gpt.py", f'openai.api_key = "sk-proj-{b64url(48)}"'),
    ("billing.py", f'stripe.api_key = "sk_live_{rand(24)}"'),
    ("api.sh", f'curl -H "Authorization: Bearer {b64url(40)}" https://api.example.net/v1'),
    ("client.py", f'requests.get(url, headers={{"Authorization": "Bearer {JWT}"}})'),
    ("auth_test.py", f'jwt = "{JWT}"'),
    ("aws.py", f'aws_access_key_id = "AKIA{rand(16, UPPER)}"'),
    ("credentials", f"aws_secret_access_key = {rand(40, ALNUM + '/+')}"),
    ("id_rsa", f"-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA{rand(60)}"),
    ("deploy_key", f"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA{rand(50)}"),
    ("ec.pem", f"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI{rand(50)}"),
    ("settings.json", f'{{"key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADAN{rand(40)}"}}'),
    ("db.py", f'DATABASE_URL = "postgresql://app:{rand(10)}#x@db.internal:5432/app"'),
    ("mongo.js", f'const uri = "mongodb+srv://admin:{rand(14)}@cluster0.ab1cd.mongodb.net/";'),
    ("cache.py", f'REDIS_URL = "redis://:{rand(16)}@cache:6379/0"'),
    ("queue.yml", f"broker: amqp://worker:{rand(12)}!@rabbit:5672/"),
    ("appsettings.json", f'"Default": "Server=tcp:db.example.net,1433;Database=shop;'
                         f'User ID=shop;Password={rand(10)}&3;"'),
    ("odbc.py", f'conn_str = "DRIVER={{ODBC Driver 18}};SERVER=db;UID=sa;PWD={rand(12)}"'),
    ("store.py", 'conn = psycopg2.connect(host="db", user="app", password="hunter2!x")'),
    ("legacy.py", f'db = mysql.connector.connect(user="root", passwd="{rand(9)}!")'),
    ("cdn.py", f'token = "{rand(32, HEX)}"'),
    ("config.ts", f'export const config = {{ accessToken: "{rand(20)}" }};'),
    ("session.js", f'this.accessToken = "{rand(28)}";'),
    ("maps.py", f'API_KEY = "AIza{b64url(35)}"'),
    ("settings.py", f"SECRET_KEY = 'django-insecure-{rand(50, ALNUM + '!@#%^&*(-_=+)')}'"),
    (".env", f"STRIPE_SECRET=sk_test_{rand(24)}"),
    ("docker-compose.yml", f"      password: {rand(6)}!{rand(3, string.digits)}"),
    ("oauth_app.py", f'client_secret = "{rand(32)}"'),
    (".npmrc", f"//registry.npmjs.org/:_authToken=npm_{rand(36)}"),
    ("fetch.py", f'requests.get(url, auth=("deploy", "{rand(10)}!2024"))'),
    ("setup.sh", f"export GITHUB_TOKEN=ghp_{rand(36)}"),
    ("upload.sh", f"curl -u admin:{rand(10)}! https://nexus.internal/upload"),
    ("mail.py", f'smtp.login("bot@example.org", password="{rand(12)}")'),
    ("vault.yaml", f"api_key: {rand(32)}"),
]

# (file name, text): none holds a secret, though each looks like one to a naive filter.
LOOK_ALIKES = [
    ("a.py", 'password = ""'),
    ("a.py", 'password = "xxx"'),
    ("a.py", 'password = "********"'),
    ("a.py", 'PASSWORD_FIELD = "password"'),
    ("a.py", 'token = "<your-token>"'),
    ("a.py", 'api_key = "YOUR_API_KEY"'),
    ("a.py", 'api_key = os.environ["API_KEY"]'),
    ("a.py", 'secret = os.getenv("SECRET")'),
    ("a.py", 'headers = {"Authorization": f"Bearer {token}"}'),
    ("a.py", 'AUTH_HEADER = "Authorization"'),
    ("a.py", 'API_KEY_HEADER = "X-Api-Key"'),
    ("a.py", 'token_type = "Bearer"'),
    ("README.md", "Send `Authorization: Bearer <token>` with every request."),
    ("ci.yml", "      GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}"),
    ("a.py", 'TOKEN = "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"'),
    ("a.py", 'aws_access_key_id = "AKIAIOSFODNN7EXAMPLE"'),
    ("a.py", 'DATABASE_URL = "postgres://user:password@localhost/db"'),
    ("a.py", 'DATABASE_URL = "postgres://user:${DB_PASSWORD}@db/app"'),
    ("a.py", 'REDIS_URL = "redis://localhost:6379/0"'),
    ("a.py", 'REPO = "https://git@github.com/org/repo.git"'),
    ("a.py", 'sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"'),
    ("a.py", 'run_id = "123e4567-e89b-12d3-a456-426614174000"'),
    ("a.py", "-----BEGIN PUBLIC KEY-----"),
    ("a.pem", "-----BEGIN CERTIFICATE-----"),
    ("a.py", "def get_token(self):\n    return self._token"),
    ("a.py", "token = tokenizer.encode(text)"),
    ("a.py", "max_tokens = 1024"),
    ("a.py", "password_min_length = 8"),
    ("a.py", 'PASSWORD_RESET_URL = "/accounts/password/reset/"'),
    ("a.py", 'SECRET_KEY_ENV = "DJANGO_SECRET_KEY"'),
    ("a.py", 'token_url = "https://oauth2.googleapis.com/token"'),
    ("a.py", "client_secret = settings.CLIENT_SECRET"),
    ("a.py", 'access_token = response.json()["access_token"]'),
    ("a.ts", "  accessToken: string;"),
    ("a.js", "  password: process.env.DB_PASSWORD,"),
    (".env", "API_KEY="),
    (".env", "DB_PASSWORD=changeme"),
    ("a.yml", "password: ${DB_PASSWORD}"),
    ("a.py", 'CONN = "Server=db;Database=app;Trusted_Connection=True;"'),
    ("a.py", 'slack = WebClient("xoxb-your-bot-token")'),
    ("a.py", 'checksum = "d41d8cd98f00b204e9800998ecf8427e"'),
    ("a.py", 'secret_name = "prod/db/credentials"'),
    ("a.py", 'auth_token_label = "Token:"'),
    ("a.py", 'password_hint = "at least 8 characters"'),
    ("a.py", 'openai_key_prefix = "sk-"'),
    ("a.py", '"""Tokens look like ghp_... and keys like sk-ant-..."""'),
    ("a.py", 'logger.info("token refreshed for %s", user)'),
    ("a.py", 'jwt_algorithm = "HS256"'),
]


def test_the_planted_set_has_forty_of_each():
    assert len(PLANTED) >= 40 and len(LOOK_ALIKES) >= 40


def test_every_planted_secret_is_caught():
    missed = [text for name, text in PLANTED if not find_secrets(text, name)]
    assert missed == [], f"caught {len(PLANTED) - len(missed)}/{len(PLANTED)}"


def test_at_most_five_percent_of_the_look_alikes_are_dropped():
    dropped = [(text, find_secrets(text, name)[0].kind)
               for name, text in LOOK_ALIKES if find_secrets(text, name)]
    assert len(dropped) <= 0.05 * len(LOOK_ALIKES), dropped


def test_a_finding_names_its_kind_and_line():
    text = f'import os\n\nHF_TOKEN = "hf_{rand(34)}"\n'
    [finding] = find_secrets(text, "hub.py")
    assert (finding.kind, finding.line) == ("Hugging Face token", 3)
