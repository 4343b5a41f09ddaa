# seeds/000 "Modern Python Web Development Basics", 2.1: the minimal WSGI app.
def minimal_wsgi_app(environ, start_response):
    # 步骤1:通过 start_response 发送状态码和响应头
    start_response('200 OK', [('Content-Type', 'text/html; charset=utf-8')])

    # 步骤2:返回包含响应体的可迭代对象(列表、生成器等)
    return [b'<h1>Hi from Raw WSGI!</h1>']
