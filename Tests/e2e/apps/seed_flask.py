# seeds/000 "Modern Python Web Development Basics", 4.1: the same routes with Flask.
from flask import Flask

app = Flask(__name__)

@app.route('/')
def home():
    return '<h1>Home</h1>'

@app.route('/user/<int:user_id>')
def user_profile(user_id):
    return f'<h1>User {user_id}</h1>'

@app.errorhandler(404)
def page_not_found(e):
    return '<h1>404 Page Not Found</h1>', 404
