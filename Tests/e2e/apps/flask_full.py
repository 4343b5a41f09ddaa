"""A Flask app covering what the issue lists: routes, JSON, forms, uploads,
streaming, 404/500 handlers."""
from flask import Flask, Response, jsonify, request, stream_with_context

app = Flask(__name__)


@app.route("/")
def index():
    return "<h1>Index</h1>"


@app.route("/items/<int:item_id>", methods=["GET", "PUT", "DELETE"])
def item(item_id):
    return jsonify(id=item_id, method=request.method, args=request.args.to_dict(flat=False))


@app.route("/json", methods=["POST"])
def echo_json():
    data = request.get_json()
    return jsonify(received=data, type=request.content_type), 201


@app.route("/form", methods=["POST"])
def form():
    return jsonify(form=request.form.to_dict(flat=False))


@app.route("/upload", methods=["POST"])
def upload():
    files = {name: {"filename": f.filename, "size": len(f.read()), "type": f.mimetype}
             for name, f in request.files.items()}
    return jsonify(files=files, fields=request.form.to_dict())


@app.route("/stream")
def stream():
    def generate():
        for i in range(5):
            yield "chunk %d\n" % i
    return Response(stream_with_context(generate()), mimetype="text/plain")


@app.route("/crash")
def crash():
    raise RuntimeError("view crashed")


@app.route("/headers")
def headers():
    resp = jsonify(remote=request.remote_addr, scheme=request.scheme, host=request.host, url=request.url)
    resp.set_cookie("session", "abc")
    resp.headers["X-Custom"] = "yes"
    return resp


@app.errorhandler(404)
def not_found(e):
    return jsonify(error="not found", path=request.path), 404


@app.errorhandler(500)
def server_error(e):
    return jsonify(error="server error"), 500
