"""A minimal Flask app: measures a real framework's request cycle under each server."""

from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "Hello, World!"
