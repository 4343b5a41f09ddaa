# seeds/001 "Mastering WSGI", Parsing GET / POST requests (the tutorial code the article shows
# as images). Python 2 → 3: cgi.parse_qs → urllib.parse.parse_qs, cgi.escape → html.escape,
# bodies as bytes.
from html import escape
from urllib.parse import parse_qs

html = """
<html>
<body>
   <form method="%(method)s" action="">
        <p>
           Age: <input type="text" name="age" value="%(age)s">
        </p>
        <p>
            Hobbies:
            <input name="hobbies" type="checkbox" value="software" %(checked-software)s> Software
            <input name="hobbies" type="checkbox" value="tunning" %(checked-tunning)s> Auto Tunning
        </p>
        <p>
            <input type="submit" value="Submit">
        </p>
    </form>
    <p>
        Age: %(age)s<br>
        Hobbies: %(hobbies)s
    </p>
</body>
</html>
"""


def render(d, method):
    age = d.get('age', [''])[0]  # Returns the first age value.
    hobbies = d.get('hobbies', [])  # Returns a list of hobbies.
    # Always escape user input to avoid script injection
    age = escape(age)
    hobbies = [escape(hobby) for hobby in hobbies]
    return (html % {
        'method': method,
        'checked-software': ('', 'checked')['software' in hobbies],
        'checked-tunning': ('', 'checked')['tunning' in hobbies],
        'age': age or 'Empty',
        'hobbies': ', '.join(hobbies or ['No Hobbies?'])
    }).encode('utf-8')


def get_application(environ, start_response):
    # Returns a dictionary in which the values are lists
    d = parse_qs(environ['QUERY_STRING'])
    response_body = render(d, 'get')
    status = '200 OK'
    response_headers = [
        ('Content-Type', 'text/html'),
        ('Content-Length', str(len(response_body)))
    ]
    start_response(status, response_headers)
    return [response_body]


def post_application(environ, start_response):
    # the environment variable CONTENT_LENGTH may be empty or missing
    try:
        request_body_size = int(environ.get('CONTENT_LENGTH', 0))
    except (ValueError):
        request_body_size = 0

    # When the method is POST the variable will be sent
    # in the HTTP request body which is passed by the WSGI server
    # in the file like wsgi.input environment variable.
    request_body = environ['wsgi.input'].read(request_body_size)
    d = parse_qs(request_body.decode('latin-1'))
    response_body = render(d, 'post')
    status = '200 OK'
    response_headers = [
        ('Content-Type', 'text/html'),
        ('Content-Length', str(len(response_body)))
    ]
    start_response(status, response_headers)
    return [response_body]
