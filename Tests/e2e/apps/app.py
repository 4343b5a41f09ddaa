# app.py
# seeds/000 "Modern Python Web Development Basics", 3.1 (run there as `gunicorn -w 4 -b 127.0.0.1:8000 app:dynamic_wsgi_app`).
def dynamic_wsgi_app(environ, start_response):
    status = '200 OK'
    headers = [('Content-Type', 'text/html; charset=utf-8')]

    # 从路径中提取“名字”
    # 比如访问 /Tom → PATH_INFO = '/Tom'
    path = environ.get('PATH_INFO', '/')
    name = path[1:] if len(path) > 1 else 'World'

    body = f'''
    <html>
      <body>
        <h1>Hello, {name}!</h1>
        <p>Request Method: {environ['REQUEST_METHOD']}</p>
        <p>User Agent: {environ.get('HTTP_USER_AGENT', 'Unknown')}</p>
      </body>
    </html>
    '''.encode('utf-8')

    start_response(status, headers)
    return [body]
