# seeds/001 "Mastering WSGI", Environment: environment.py returns the environ to the client
# (the classic tutorial program the article shows as an image; str bodies made bytes).
def application(environ, start_response):
    # Sorting and stringifying the environment key, value pairs
    response_body = [
        '%s: %s' % (key, value) for key, value in sorted(environ.items())
    ]
    response_body = '\n'.join(response_body).encode('latin-1')

    status = '200 OK'
    response_headers = [
        ('Content-Type', 'text/plain'),
        ('Content-Length', str(len(response_body)))
    ]
    start_response(status, response_headers)

    return [response_body]
